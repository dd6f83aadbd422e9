"""quantresolve: how will every layer of a quantized checkpoint run?"""
