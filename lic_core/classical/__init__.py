"""lic_core.classical"""
