"""Training the LIGER model: length-bucketed batches, the Trainer (step, evaluate, save and
restore, fit) and its pure stop policy.
"""
