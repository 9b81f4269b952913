"""Side-by-side benchmarks against peer implementations (run with `make bench`)."""
