"""lic_core.quantizer"""
