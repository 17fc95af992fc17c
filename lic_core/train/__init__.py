"""lic_core.train"""
