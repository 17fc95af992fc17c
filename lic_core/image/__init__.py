"""lic_core.image"""
