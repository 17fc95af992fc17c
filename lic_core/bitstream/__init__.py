"""lic_core.bitstream"""
