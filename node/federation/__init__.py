"""Federation between EduFed nodes: discovery, signed delivery, mirroring."""
