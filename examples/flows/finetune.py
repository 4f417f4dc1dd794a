"""Fine-tune a small open causal language model on several GPU nodes and publish it where endpoints read it.

`train` runs on `nodes` GPU nodes at once (@parallel: one JobSet, admitted whole by Kueue) with PyTorch
DistributedDataParallel, one GPU per node. The data is JSON Lines, one {"text": ...} per line, under the team's
prefix of the datasets bucket; the result is a Hugging Face model directory (config, safetensors weights,
tokenizer) under s3://<models bucket>/<team>/<model>/<version>/, the layout an inference endpoint's `model:`
names and vLLM loads with `--model`.

    python finetune.py run --dataset s3://dev-111122223333-us-east-1-datasets/search/support-chats/

torch and transformers are imported inside the steps that need them: the step image brings them (`--image`
or METAFLOW_KUBERNETES_CONTAINER_IMAGE), and deploying the flow with `argo-workflows create` does not need them.
"""

import json
import os
import re
import tempfile
from pathlib import Path

from metaflow import S3, FlowSpec, Parameter, current, kubernetes, parallel, step
from metaflow.metaflow_config import DATASTORE_SYSROOT_S3

# s3://<env>-<account>-<region>-models/<team>/<model>/<version>/: what an endpoint's `model:` accepts.
MODEL_URI = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/"
    r"(?P<team>[a-z][a-z0-9-]*)/(?P<model>[a-z0-9][a-z0-9._-]*)/(?P<version>[A-Za-z0-9][A-Za-z0-9._-]*)/$"
)
# The team's Metaflow root, s3://<env>-<account>-<region>-artifacts/<team>/metaflow (the platform's config).
TEAM_ROOT = re.compile(r"^s3://(?P<prefix>[a-z0-9.-]+)-artifacts/(?P<team>[a-z][a-z0-9-]*)/metaflow/?$")


def models_location(sysroot, model, version):
    """Where the team's model version goes: the models bucket beside the team's artifacts bucket."""
    match = TEAM_ROOT.match(sysroot or "")
    if not match:
        raise ValueError(f"{sysroot!r} is not a team's Metaflow root; pass --output")
    return f"s3://{match['prefix']}-models/{match['team']}/{model}/{version}/"


def read_texts(dataset):
    """Every "text" of the JSON Lines files under `dataset` (an S3 prefix, or a local folder for a local run)."""
    if dataset.startswith("s3://"):
        with S3(s3root=dataset) as s3:
            blobs = [obj.blob for obj in s3.get_all() if obj.key.endswith((".jsonl", ".json"))]
    else:
        blobs = [path.read_bytes() for path in sorted(Path(dataset).glob("*.jsonl"))]
    texts = [json.loads(line)["text"] for blob in blobs for line in blob.decode().splitlines() if line.strip()]
    if not texts:
        raise ValueError(f"no JSON Lines records under {dataset}")
    return texts


def publish(folder, output):
    """Copy the saved model folder to `output`, keeping file names (vLLM reads config.json beside the weights)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    if output.startswith("s3://"):
        with S3(s3root=output) as s3:
            s3.put_files([(p.name, str(p)) for p in files])
    else:
        Path(output).mkdir(parents=True, exist_ok=True)
        for p in files:
            (Path(output) / p.name).write_bytes(p.read_bytes())
    return [p.name for p in files]


class FinetuneFlow(FlowSpec):
    dataset = Parameter("dataset", required=True, help="s3://<datasets bucket>/<team>/<name>/ (JSON Lines)")
    base_model = Parameter(
        "base-model", default="Qwen/Qwen2.5-0.5B-Instruct", help="Hugging Face id or local folder of the model"
    )
    model_name = Parameter("model-name", default="qwen2-5-0-5b-tuned", help="Name under the team's models prefix")
    output = Parameter("output", default="", help="Default: s3://<models bucket>/<team>/<model-name>/<run id>/")
    nodes = Parameter("nodes", default=2, type=int, help="GPU nodes that train together")
    epochs = Parameter("epochs", default=1, type=int)
    max_length = Parameter("max-length", default=512, type=int, help="Tokens per training example")

    @step
    def start(self):
        self.location = self.output or models_location(DATASTORE_SYSROOT_S3, self.model_name, current.run_id)
        if self.location.startswith("s3://") and not MODEL_URI.match(self.location):
            raise ValueError(f"{self.location} is not s3://<models bucket>/<team>/<model>/<version>/")
        self.texts = read_texts(self.dataset)
        if len(self.texts) < self.nodes:
            raise ValueError(f"{len(self.texts)} records cannot be shared by {self.nodes} nodes")
        self.next(self.train, num_parallel=self.nodes)

    @parallel
    @kubernetes(gpu=1, cpu=4, memory=16384, shared_memory=4096)
    @step
    def train(self):
        import torch
        import torch.distributed as dist
        from transformers import AutoModelForCausalLM, AutoTokenizer

        rank, world = current.parallel.node_index, current.parallel.num_nodes
        cuda = torch.cuda.is_available()
        # @parallel gives every node the control node's address; MF_MASTER_PORT is the JobSet's port on Kubernetes.
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            init_method=f"tcp://{current.parallel.main_ip}:{os.environ.get('MF_MASTER_PORT', '29500')}",
            world_size=world,
            rank=rank,
        )
        device = torch.device("cuda", 0) if cuda else torch.device("cpu")
        tokenizer = AutoTokenizer.from_pretrained(self.base_model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.base_model).to(device)
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0] if cuda else None)
        optimizer = torch.optim.AdamW(ddp.parameters(), lr=2e-5)
        shard = self.texts[rank::world]  # each node trains on its own slice; DDP averages the gradients
        steps = max(1, len(self.texts) // world)  # the same number of steps on every node, or all_reduce hangs
        ddp.train()
        self.losses = []
        for _ in range(self.epochs):
            for i in range(steps):
                batch = tokenizer(
                    shard[i % len(shard)], truncation=True, max_length=self.max_length, return_tensors="pt"
                ).to(device)
                loss = ddp(**batch, labels=batch["input_ids"]).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                self.losses.append(float(loss))
        if rank == 0:
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder, safe_serialization=True)
                tokenizer.save_pretrained(folder)
                self.files = publish(folder, self.location)
        dist.destroy_process_group()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.location = inputs[0].location
        self.files = next(i.files for i in inputs if hasattr(i, "files"))
        self.losses = [loss for i in inputs for loss in i.losses]
        self.next(self.end)

    @step
    def end(self):
        print(f"model: {self.location} ({', '.join(self.files)})")


if __name__ == "__main__":
    FinetuneFlow()
