"""UniMRSeg core: everything that needs no ROS (data, model, training, runtime, health)."""

__version__ = "0.1.0"
