"""What is served and whether it may be: the self-contained recommender bundle, and its offline
evaluation with the promotion gate.
"""
