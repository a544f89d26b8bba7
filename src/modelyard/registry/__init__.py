"""modelyard.registry"""
