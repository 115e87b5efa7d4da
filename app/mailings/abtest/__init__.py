"""A/B tests: variants of a mailing sent to an evenly split test portion, and the winner."""
