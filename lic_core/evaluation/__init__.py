"""lic_core.evaluation"""
