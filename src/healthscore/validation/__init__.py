"""Is the score right? Point-in-time backtest, signal discovery, suggested weights, report."""
