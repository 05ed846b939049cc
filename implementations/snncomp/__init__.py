"""snncomp: minimal, tested reference implementations of compression methods for deep spiking
neural networks, companion to the survey of Xie, Yang and Gao [@xie2024efficient]."""

__version__ = "0.1.0"
