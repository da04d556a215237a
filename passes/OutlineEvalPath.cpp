#include "OutlineEvalPath.h"

#include "GraphWalk.h"

#include <torch/csrc/jit/api/module.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace rdna1::passes {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

constexpr const char *kTrainingPrefix = "_rdna1_training_";
constexpr const char *kEvalPrefix = "_rdna1_eval_";
// Files written by 0.2 may also hold a second training copy, "_rdna1_training_conv_<name>"
// (its conv copy), which the training prefix covers.

// The values that `block` (its nodes, nested blocks and outputs) reads from
// outside it, each once, in order of first use.
std::vector<Value *> freeValues(Block *block) {
  std::vector<Value *> values;
  std::unordered_set<Value *> seen;
  const Node *owner = block->owningNode();
  const auto add = [&](Value *v) {
    if (!isWithin(v->node(), owner) && seen.insert(v).second)
      values.push_back(v);
  };
  std::vector<Node *> nodes;
  collectNodes(block, nodes);
  for (Node *node : nodes) {
    for (Value *v : node->inputs())
      add(v);
    for (Block *inner : node->blocks())
      for (Value *v : inner->outputs())
        add(v);
  }
  for (Value *v : block->outputs())
    add(v);
  return values;
}

// Constants are copied into the method rather than passed to it.
bool isCopiedIn(const Value *v) {
  return v->node()->kind() == c10::prim::Constant || v->node()->kind() == c10::prim::Uninitialized;
}

// A parameter name for the method's schema: the value's own where it has one
// not yet taken, else argument_<i>.
std::string parameterName(const Value *v, size_t index, std::unordered_set<std::string> &taken) {
  std::string name = v->hasDebugName() ? v->debugNameBase() : "";
  if (name.empty() || !taken.insert(name).second) {
    name = "argument_" + std::to_string(index);
    taken.insert(name);
  }
  return name;
}

// The graph of a method computing what `block` computes, from `self` and the
// block's other free values (returned in `arguments`, in parameter order).
std::shared_ptr<Graph> outlinedGraph(Block *block, Value *self, std::vector<Value *> &arguments) {
  auto graph = std::make_shared<Graph>();
  std::unordered_map<Value *, Value *> env;
  std::unordered_set<std::string> taken{"self"};
  env[self] = graph->addInput("self")->setType(self->type());
  arguments = {self};
  for (Value *v : freeValues(block)) {
    if (v == self)
      continue;
    if (isCopiedIn(v)) {
      Node *copy = graph->appendNode(graph->createClone(v->node(), [](Value *) -> Value * {
        throw std::logic_error("a constant has no inputs");
      }));
      env[v] = copy->output();
      continue;
    }
    env[v] = graph->addInput(parameterName(v, arguments.size(), taken))->setType(v->type());
    arguments.push_back(v);
  }
  graph->block()->cloneFrom(block, [&env](Value *v) { return env.at(v); });
  return graph;
}

// Empties `block` and has it call `name` on `arguments` instead.
void callInstead(Block *block, const std::string &name, const std::vector<Value *> &arguments) {
  std::vector<c10::TypePtr> types;
  for (Value *v : block->outputs())
    types.push_back(v->type());
  clearBlock(block);
  Graph &graph = *block->owningGraph();
  Node *call = block->appendNode(graph.create(c10::prim::CallMethod, arguments, types.size()));
  call->s_(c10::attr::name, name);
  for (size_t i = 0; i < types.size(); ++i)
    block->registerOutput(call->output(i)->setType(types[i]));
}

void addMethod(torch::jit::Module &module, const std::string &name, std::shared_ptr<Graph> graph) {
  const auto unit = module._ivalue()->compilation_unit();
  torch::jit::Function *function =
      unit->create_function(c10::QualifiedName(*module.type()->name(), name), std::move(graph));
  module.type()->addMethod(function);
}

// Moves `block` into method `name` and has it call that.
void outline(torch::jit::Module &module, Block *block, const std::string &name) {
  Value *self = block->owningGraph()->inputs()[0];
  std::vector<Value *> arguments;
  addMethod(module, name, outlinedGraph(block, self, arguments));
  callInstead(block, name, arguments);
}

} // namespace

std::string trainingCopyName(const std::string &method) {
  return kTrainingPrefix + method;
}
std::string evalCopyName(const std::string &method) {
  return kEvalPrefix + method;
}

bool IsOutlinedCopy(const std::string &name) {
  return name.rfind(kTrainingPrefix, 0) == 0 || name.rfind(kEvalPrefix, 0) == 0;
}

bool HasOutlinedCopies(const torch::jit::Module &module, const std::string &method) {
  return module.find_method(evalCopyName(method)).has_value() ||
         module.find_method(trainingCopyName(method)).has_value();
}

bool CanOutlineEvalPath(const torch::jit::Module &module, const std::string &method) {
  return !module.find_method(trainingCopyName(method)) && !module.find_method(evalCopyName(method));
}

void OutlineEvalPath(torch::jit::Module &module, const std::string &method, Node *split) {
  outline(module, split->blocks()[0], trainingCopyName(method));
  outline(module, split->blocks()[1], evalCopyName(method));
}

} // namespace rdna1::passes
