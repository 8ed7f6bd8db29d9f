"""Judge: the combination policy (one finding per criterion) and the reasoning trace under it."""
