"""RQ job functions (thin) and the worker entry points."""
