"""lic_core.decoder"""
