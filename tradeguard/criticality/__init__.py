"""The CriticalityMonitor: 15 systemic-risk indicators, one score, a breach past the threshold.

Kept import-light: the config imports the indicator names from here.
"""
