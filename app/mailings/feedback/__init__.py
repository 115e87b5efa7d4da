"""What comes back after sending: bounces (DSNs, SMTP, webhooks and SNS) and their import."""
