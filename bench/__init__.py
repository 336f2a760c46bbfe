"""Benchmarks: measurements that read real data (--data) or take minutes; results under bench/results."""
