"""CloudFormation's intrinsic functions, evaluated the way CloudFormation does, for the resources
moto's CloudFormation skips: the stack check (check_stack.py) creates those through their own
APIs from the template's own properties, resolved here against the deployed stack.

Covers what infra/stockstream.yaml uses: Ref (parameters, pseudo parameters, resources),
Fn::Sub (both forms, `${!literal}`), Fn::GetAtt (through a callback), Fn::If, Fn::Equals,
Fn::Not, Fn::And, Condition, Fn::Select, Fn::Split, Fn::Base64 and AWS::NoValue.
"""
import base64
import re

NO_VALUE = object()


class Resolver:
    def __init__(self, template, parameters, pseudo, physical_ids, get_att):
        self.template = template
        self.values = {}
        for name, slot in template.get("Parameters", {}).items():
            value = parameters.get(name, slot.get("Default"))
            self.values[name] = str(value) if value is not None else None
        self.values.update(pseudo)
        self.physical_ids = physical_ids
        self.get_att = get_att
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def exists(self, logical_id):
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise KeyError(f"Ref {name}: no parameter, pseudo parameter or created resource")

    def sub(self, text, variables):
        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(side) for side in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in argument)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in argument)
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self.sub(argument, {})
                text, variables = argument
                return self.sub(text, {name: self.resolve(value) for name, value in variables.items()})
            if key == "Fn::GetAtt":
                resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Base64":
                return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def properties(self, logical_id):
        return self.resolve(self.template["Resources"][logical_id].get("Properties", {}))
