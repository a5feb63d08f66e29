"""Every default value of keraslab, each with its reason.

The defaults reproduce the handout's program, so that ``keraslab approx`` with
no flag runs exactly what the lab describes.
"""

from __future__ import annotations

LAB_FUNCTION = "cos(2*x) + x*sin(3*x) + sqrt(x) - 2"  # f of the handout, section 2
INTERVAL = (0.0, 5.0)  # the handout's [a, b] = [0, 5]
N = 100  # the handout's N = 100 evenly spaced abscissas
NOISY_N = 60  # section 2.5 uses N = 60 noisy samples

LAYERS = 4  # "4 couches de 10 neurones"
UNITS = 10  # the handout's p = 10
ACTIVATION = "tanh"  # the hidden layers of the handout use tanh
OUTPUT_ACTIVATION = "linear"  # one output neuron, identity activation

EPOCHS = 4000  # the handout trains for 4000 epochs
OPTIMIZER = "rmsprop"  # what Keras's compile() uses when no optimizer is given, as in the handout
LOSS = "mse"  # compile(loss='mean_squared_error') in the handout
SEED = 0  # any fixed seed makes runs reproducible; 0 is the obvious one

SIGMA = 0.3  # gaussnoise(0, 0.3, N) in section 2.5
MU = 0.0
VAL_SPLIT = 0.2  # a fifth of the noisy samples held out to see overfitting

# Keras 3 defaults of each optimizer's learning_rate (keras.optimizers.*);
# a test checks this table against the installed Keras.
OPTIMIZER_LEARNING_RATES = {
    "rmsprop": 0.001,
    "sgd": 0.01,
    "adam": 0.001,
    "adamw": 0.001,
    "adagrad": 0.001,
    "adadelta": 0.001,
    "nadam": 0.001,
}
OPTIMIZERS = tuple(OPTIMIZER_LEARNING_RATES)

# Keras activations that make sense for a hidden layer of a small MLP.
ACTIVATIONS = (
    "relu", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "softplus",
    "softsign", "swish", "silu", "mish", "leaky_relu", "relu6", "hard_sigmoid",
    "hard_swish", "exponential",
)
LOSSES = ("mse", "mae", "huber")
LR_SCHEDULES = ("constant", "exponential", "cosine", "plateau")

# Hand-set networks may also use the step function that the handout discusses.
HAND_ACTIVATIONS = ACTIVATIONS + ("heaviside",)

DENSE_GRID_POINTS = 1000  # points used to measure the error of F against f over the whole interval
PLOT_POINTS = 400  # points used to draw the true f smoothly on fit plots
