"""Tables I and II (paper values beside ours) and the samuel-eval command line (reports.cli)."""
