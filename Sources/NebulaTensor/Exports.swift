// The engine re-exports the foundations (NebulaCore): every layer above it reaches them through `import NebulaTensor`.
@_exported import NebulaCore
