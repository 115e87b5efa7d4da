"""Turn a frozen mailing and a supporter into an RFC 5322 message and hand it to a transport."""
