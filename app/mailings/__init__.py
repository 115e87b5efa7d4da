"""Mailings: compose, freeze, snapshot the audience and send."""
