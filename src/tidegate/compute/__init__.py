"""Compute-to-data: environments, jobs and the engines that run them."""
