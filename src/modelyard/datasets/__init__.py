"""modelyard.datasets"""
