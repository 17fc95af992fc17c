"""lic_core.entropy_coder"""
