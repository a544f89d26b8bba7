"""modelyard.hpo"""
