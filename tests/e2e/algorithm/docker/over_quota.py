"""Docker e2e probe: three 4 MiB outputs, more than a 0.01 GB (10737418 bytes) diskGB."""

for name in "abc":
    with open(f"/data/outputs/{name}", "wb") as out:
        out.write(bytes(4 * 1024 * 1024))
    print("wrote", name, flush=True)
