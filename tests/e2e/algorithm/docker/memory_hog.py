"""Docker e2e probe: allocate far more memory than the environment's ramGB."""

print("allocating", flush=True)
blob = b"x" * (512 * 1024 * 1024)
print("allocated", len(blob), flush=True)
