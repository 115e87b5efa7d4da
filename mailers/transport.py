"""Deliver built messages over one long-lived SMTP connection."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl

from app.config import SmtpSettings


class DeliveryError(Exception):
    """A message was not accepted; `code` is the SMTP reply code when there was one."""

    def __init__(self, reply: str, code: int | None = None):
        super().__init__(f"{code} {reply}" if code else reply)
        self.code = code
        self.reply = reply


class TemporaryFailure(DeliveryError):
    """Try again later: a 4xx reply, or the connection itself failed."""


class PermanentFailure(DeliveryError):
    """The server refused this recipient or this message for good (a 5xx such as 550/551/553)."""


class LocalError(TemporaryFailure):
    """Our own fault: the server could not parse what we sent, or refused our sender.

    Nothing here is the recipient's doing, so it must never count as a bounce. It is a
    TemporaryFailure so that every caller retries it later; callers should also log it, since
    only a fix on our side (the message builder, the sender address, the relay) makes it go away.
    """


# Replies about our command syntax, not about the recipient: 500 syntax error / line too long,
# 501 bad arguments, 502 not implemented, 503 bad sequence, 504 parameter not implemented,
# 555 MAIL/RCPT parameters not recognised (RFC 5321 4.2.3).
_PROTOCOL_CODES = frozenset({500, 501, 502, 503, 504, 555})
# Enhanced status 5.1.x is about the address itself ("501 5.1.3 bad recipient address syntax").
_ADDRESS_STATUS = re.compile(rb"^\s*5\.1\.\d")


def _has_bare_line_break(data: bytes) -> bool:
    # Three C-speed counts instead of a regex: this runs for every message of a mailing.
    crlf = data.count(b"\r\n")
    return data.count(b"\n") != crlf or data.count(b"\r") != crlf


def _reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _classify(code: int, reply: bytes | str, *, recipient: bool = False) -> DeliveryError:
    """Map an SMTP reply to our failure family; `recipient` says it answered RCPT TO."""
    text = _reply_text(reply)
    if not 500 <= code < 600:
        return TemporaryFailure(text, code)
    raw = reply if isinstance(reply, bytes) else str(reply).encode("utf-8", "replace")
    if code in _PROTOCOL_CODES and not (recipient and _ADDRESS_STATUS.match(raw)):
        return LocalError(text, code)
    return PermanentFailure(text, code)


class SmtpTransport:
    """Send many messages through one connection, reconnecting when the server drops it."""

    def __init__(self, smtp_settings: SmtpSettings):
        self.settings = smtp_settings
        self._smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, mail_from: str, rcpt: str, data: bytes) -> None:
        """Deliver one message to one recipient or raise TemporaryFailure/PermanentFailure.

        LocalError (a TemporaryFailure) means the fault is ours; a message with bare CR or LF
        line breaks is refused here, before a strict server (RFC 5321 2.3.8) refuses it.
        """
        if _has_bare_line_break(data):
            raise LocalError("the message has bare CR or LF line breaks; RFC 5321 needs CRLF")
        options = ["SMTPUTF8"] if not (mail_from.isascii() and rcpt.isascii()) else []
        reused = self._smtp is not None
        try:
            self._send_once(mail_from, rcpt, data, options)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            # A reused connection may have been closed by the server while idle: one retry on a
            # fresh connection. A fresh connection failing the same way is a real failure.
            self._drop()
            if not reused:
                raise TemporaryFailure(f"connection lost: {exc}") from exc
            try:
                self._send_once(mail_from, rcpt, data, options)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as again:
                self._drop()
                raise TemporaryFailure(f"connection lost: {again}") from again

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        if self._smtp is None:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self._smtp.quit()
        self._drop()

    def _send_once(self, mail_from: str, rcpt: str, data: bytes, options: list[str]) -> None:
        smtp = self._connection()
        try:
            if not options and smtp.has_extn("pipelining"):
                _send_pipelined(smtp, mail_from, rcpt, data)
            else:
                smtp.sendmail(mail_from, [rcpt], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(rcpt, (450, b"recipient refused"))
            raise _classify(code, reply, recipient=True) from exc
        except smtplib.SMTPSenderRefused as exc:
            # Our envelope sender was refused: a 5xx is a problem with our set-up, not a bounce.
            if 500 <= exc.smtp_code < 600:
                raise LocalError(_reply_text(exc.smtp_error), exc.smtp_code) from exc
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPDataError as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentFailure(f"the server cannot take this message: {exc}") from exc
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except TimeoutError as exc:
            self._drop()  # the session is in an unknown state mid-command
            raise TemporaryFailure(f"SMTP server timed out: {exc}") from exc
        except ConnectionError:
            self._drop()
            raise  # send() retries once on a fresh connection
        except OSError as exc:
            self._drop()
            raise TemporaryFailure(f"SMTP connection failed: {exc}") from exc
        except smtplib.SMTPException as exc:
            self._reset()
            raise LocalError(f"SMTP client error: {exc}") from exc

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and self._smtp.sock is not None:
            return self._smtp
        self._drop()
        s = self.settings
        try:
            if s.use_ssl:
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            try:
                if s.starttls and not s.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.ehlo_or_helo_if_needed()  # learn the extensions (PIPELINING) up front
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPResponseException as exc:
            # Connection, TLS and login problems say nothing about the recipient: temporary.
            raise TemporaryFailure(_reply_text(exc.smtp_error), exc.smtp_code) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        self.connections_opened += 1
        self._smtp = smtp
        return smtp

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
        self._smtp = None


def _send_pipelined(smtp: smtplib.SMTP, mail_from: str, rcpt: str, data: bytes) -> None:
    """Send MAIL, RCPT and DATA in one write and read the three replies (RFC 2920).

    Two round trips per message instead of four. `data` must already use CRLF line endings,
    as MessageFactory's output does; only dot-stuffing is applied here. Failures raise the
    same smtplib exceptions as `sendmail`, after an RSET, so callers classify them alike.
    """
    smtp.send(f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode("ascii"))
    mail_code, mail_reply = smtp.getreply()
    rcpt_code, rcpt_reply = smtp.getreply()
    data_code, data_reply = smtp.getreply()
    if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
        # A server should refuse DATA after a refused sender or recipient; if it did not,
        # end the empty message without sending anything, then reset.
        smtp.send(b".\r\n")
        smtp.getreply()
    if mail_code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, mail_from)
    if rcpt_code not in (250, 251):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused({rcpt: (rcpt_code, rcpt_reply)})
    if data_code != 354:
        smtp.rset()
        raise smtplib.SMTPDataError(data_code, data_reply)
    # Dot-stuffing (RFC 5321 4.5.2); bytes.replace is C speed where a multiline regex is not.
    body = data.replace(b"\n.", b"\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
