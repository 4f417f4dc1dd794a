"""Call an inference endpoint of the platform from a pod of your team (a notebook, a workflow step).

    python call_endpoint.py --url http://chat.search.svc.cluster.local:8080 "Hello"

A vLLM endpoint speaks the OpenAI API under /v1. It serves its model under the <model> segment of the
endpoint's `model:` location (s3://<models bucket>/<team>/<model>/<version>/), which GET /v1/models lists;
without --model the client asks for it. A scale-to-zero endpoint answers its first request only after a GPU
node has started and the model has loaded, so the client waits up to 20 minutes.
"""

import argparse
import os

from openai import OpenAI

COLD_START_SECONDS = 1200


def ask(url, prompt, model=None, max_tokens=64):
    """The endpoint's reply to one user message, from `model` or else the one model the endpoint serves."""
    # The endpoint checks no key (the NetworkPolicy admits only your team); the client requires a value.
    client = OpenAI(base_url=f"{url.rstrip('/')}/v1", api_key="unused", timeout=COLD_START_SECONDS)
    served = [m.id for m in client.models.list()]
    if model is None and len(served) == 1:
        model = served[0]
    if model not in served:
        raise SystemExit(f"error: {url} serves {', '.join(served) or 'no model'}, not {model}; pass --model")
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens
    )
    return reply.choices[0].message.content


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ENDPOINT_URL", "http://chat.search.svc.cluster.local:8080"))
    parser.add_argument("--model", default=None, help="Default: the one model the endpoint serves")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("prompt")
    args = parser.parse_args()
    print(ask(args.url, args.prompt, args.model, args.max_tokens))


if __name__ == "__main__":
    main()
