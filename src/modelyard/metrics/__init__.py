"""modelyard.metrics"""
