# GPU worker SDK container for the scoring stage (RunInference with a PyTorch model on NVIDIA L4 workers).
# Dataflow installs the NVIDIA driver on the VM (install-nvidia-driver service option); the CUDA runtime
# libraries come with the CUDA build of torch. Build from the repository root:
#   docker build -f infra/dataflow/gpu-worker.Dockerfile -t "$GPU_IMAGE" .
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

# The CUDA variant of the torch 2.13.0 wheels on download.pytorch.org (e.g. cu126, cu128): one whose CUDA
# version the driver Dataflow installs supports.
ARG TORCH_CUDA=cu128
RUN pip install --no-cache-dir "torch==2.13.0" --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}"

WORKDIR /opt/vgr-etl
COPY pyproject.toml README.md ./
COPY beam_pipelines ./beam_pipelines
# torch is already installed (CUDA build); installing the package must not replace it with a CPU wheel.
RUN pip install --no-cache-dir ".[torch]" && pip check \
 && python -c "import torch, apache_beam.ml.inference.pytorch_inference; assert '+cpu' not in torch.__version__"
# An unprivileged user, as in the CPU image (the NVIDIA libraries Dataflow mounts are world-readable).
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin vgr
USER 10001

ENTRYPOINT ["/opt/apache/beam/boot"]
