"""lic_core.metrics"""
