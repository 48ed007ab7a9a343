"""The op types an image module may run: reviewed here, and only here.

Derived from what slimhub's exports of every family and version contain:
``tools/module_op_types.py`` lists them per module, and
tests/test_security.py checks that every export passes with this list
alone. A new op type in an export fails those tests; add it to its group
only after reviewing what it does. Beyond them, only the reference-variable
ops of TF 1.x (Google's TF1 Hub modules) and the ops of image modules made
with plain TF or Keras are listed. File I/O (ReadFile, WriteFile,
MatchingFiles, ...), PyFunc / EagerPyFunc and ops that reach the network or
the host never belong here.
"""

_GROUPS = {
    # Convolutions, dense layers and their biases.
    "layers": ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BiasAdd"),
    # Batch norm (Slim's fused form, training and inference); V1 and V2
    # are the same computation as TF 1.x graphs (Google's modules) hold it.
    "batch_norm": ("FusedBatchNormV3", "FusedBatchNorm", "FusedBatchNormV2"),
    # Pooling and activations.
    "pooling": ("AvgPool", "MaxPool", "Mean"),
    "activations": ("Relu", "Relu6", "Softmax"),
    # Elementwise arithmetic: residuals, scaling of inputs, BN momentum
    # updates, weight decay (L2Loss), drop path; Add is AddV2 as TF 1.x
    # graphs hold it.
    "arithmetic": ("AddV2", "Add", "AddN", "Sub", "Mul", "RealDiv", "Floor",
                   "L2Loss"),
    # Shapes: concatenating branches, squeezing spatial dims, padding, the
    # shapes of dropout and drop-path masks.
    "shapes": ("ConcatV2", "Squeeze", "Reshape", "Shape", "Fill", "Pad",
               "Pack", "StridedSlice"),
    # Dropout and drop path (random masks) and the initializers of TF1
    # variables.
    "random": ("RandomUniform", "GreaterEqual", "SelectV2",
               "TruncatedNormal"),
    # Variables: handles, reads and the assigns of BN moving averages.
    # Resource variables (slimhub's exports), then TF 1.x's reference
    # variables (Google's TF1 Hub modules; read through Identity): each of
    # these only creates, writes or tests the one variable its ref input or
    # output is wired to (tensorflow/core/ops/state_ops.cc), like its
    # resource twin; no file, network or host access.
    "variables": ("VarHandleOp", "ReadVariableOp", "AssignVariableOp",
                  "AssignSubVariableOp",
                  "VariableV2", "Assign", "AssignSub", "AssignAdd",
                  "IsVariableInitialized"),
    # Graph plumbing: inputs, constants, identities, no-ops.
    "plumbing": ("Placeholder", "PlaceholderWithDefault", "Const",
                 "Identity", "NoOp"),
    # Function calls and functional control flow: the functions they call,
    # branches and loop bodies are scanned too.
    "calls": ("StatefulPartitionedCall", "PartitionedCall", "If",
              "StatelessIf", "While", "StatelessWhile", "Case"),
    # Quantized mobilenets: fake quantization, batch norm folded with rsqrt.
    "quantization": ("FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs",
                     "Rsqrt"),
    # Not in slimhub's exports, in image modules made with plain TF or
    # Keras (tests/test_verify.py's foreign modules): Keras' unfused batch
    # moments and TF1's random_normal initializer.
    "other_image_modules": ("SquaredDifference", "StopGradient",
                            "RandomStandardNormal"),
}

DEFAULT = frozenset(op for ops in _GROUPS.values() for op in ops)

# The saver's own ops: allowed only on the path of the saver's restore op,
# never when a signature, collection or saved function reaches them.
SAVER = frozenset({"RestoreV2", "SaveV2", "MergeV2Checkpoints",
                   "ShardedFilename", "StringJoin"})
