"""modelyard.workflows"""
