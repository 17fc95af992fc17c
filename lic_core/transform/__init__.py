"""lic_core.transform"""
