import wit_world


class WitWorld(wit_world.WitWorld):
    def run(self) -> str:
        return "not an evaluator"
