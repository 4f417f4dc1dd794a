from metaflow import FlowSpec, kubernetes, step


class HelloFlow(FlowSpec):
    @step
    def start(self):
        self.message = "hello from the platform"
        self.next(self.train)

    @kubernetes(cpu=1, memory=2048)
    @step
    def train(self):
        print(self.message)
        self.next(self.end)

    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    HelloFlow()
