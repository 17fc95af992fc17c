"""lic_core.rate"""
