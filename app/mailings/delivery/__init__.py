"""Sending a mailing: freeze and snapshot, fan out batch jobs, send, pace, pause and resume, record."""
