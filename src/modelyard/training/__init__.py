"""modelyard.training"""
