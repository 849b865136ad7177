"""Thin ROS 2 wrappers around :mod:`unimrseg_core` (nodes, message conversion, bag tools)."""
