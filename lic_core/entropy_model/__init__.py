"""lic_core.entropy_model"""
