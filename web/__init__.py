"""Model shards + templates + vendored TF.js runtime -> a static site; and a local server for it."""
