#include "SpecializeEvalPath.h"

#include "OpSymbols.h"

#include "FoldConstantBranches.h"
#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace rdna1::passes {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using AttributePath = std::vector<std::string>;

bool readsTraining(const Node *node) {
  return node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training";
}

bool isNorm(const Node *node) {
  return node->kind() == symbols::kBatchNorm || node->kind() == symbols::kInstanceNorm ||
         node->kind() == c10::aten::batch_norm || node->kind() == c10::aten::instance_norm;
}

// `any(flags)`, each read once, sharing the submodule reads of common prefixes.
Value *anyTraining(Graph &graph, const std::vector<AttributePath> &paths) {
  std::map<AttributePath, Value *> read{{{}, graph.inputs()[0]}};
  Value *any = nullptr;
  for (const AttributePath &path : paths) {
    AttributePath prefix;
    Value *object = graph.inputs()[0];
    for (const std::string &name : path) {
      prefix.push_back(name);
      auto [it, fresh] = read.try_emplace(prefix, nullptr);
      if (fresh)
        it->second = graph.insertGetAttr(object, name);
      object = it->second;
    }
    any = any ? graph.insert(c10::aten::__or__, {any, object}) : object;
  }
  return any;
}

void cloneBodyInto(Graph &body, Block *into, Graph &graph) {
  std::unordered_map<Value *, Value *> env;
  for (size_t i = 0; i < body.inputs().size(); ++i)
    env[body.inputs()[i]] = graph.inputs()[i];
  const auto lookup = [&env](Value *v) { return env.at(v); };
  for (Node *node : body.nodes()) {
    Node *copy = into->appendNode(graph.createClone(node, lookup));
    for (size_t i = 0; i < node->outputs().size(); ++i)
      env[node->outputs()[i]] = copy->outputs()[i];
  }
  for (Value *output : body.outputs())
    into->registerOutput(env.at(output));
}

// The distinct flags, or why the graph keeps a single body.
std::optional<std::vector<AttributePath>> trainingFlags(const std::shared_ptr<Graph> &graph,
                                                        SplitWhen when, std::string &whyNot) {
  std::vector<AttributePath> paths;
  bool steersMoreThanNorms = false;
  for (const Node *node : allNodes(graph)) {
    if (node->kind() == c10::prim::SetAttr && node->s(c10::attr::name) == "training") {
      whyNot = "the method sets a training flag itself";
      return std::nullopt;
    }
    if (!readsTraining(node))
      continue;
    const auto path =
        graph->inputs().empty() ? std::nullopt : attributePathFromSelf(node, graph->inputs()[0]);
    if (!path) {
      whyNot = "a training flag is read from an object that is not a submodule of self";
      return std::nullopt;
    }
    paths.push_back(*path);
    for (const torch::jit::Use &use : node->output()->uses())
      steersMoreThanNorms |= !isNorm(use.user);
  }
  if (paths.empty() || (when == SplitWhen::FlagSteersMoreThanNorms && !steersMoreThanNorms)) {
    whyNot = paths.empty() ? "no training flag is read" : "training flags steer only norms";
    return std::nullopt;
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

} // namespace

EvalPath SpecializeEvalPath(const std::shared_ptr<Graph> &graph, SplitWhen when) {
  EvalPath result;
  const auto paths = trainingFlags(graph, when, result.whyNot);
  if (!paths)
    return result;
  const std::shared_ptr<Graph> body = graph->copy();
  clearBlock(graph->block());
  Node *branch = graph->insertNode(graph->create(c10::prim::If, {anyTraining(*graph, *paths)}, 0));
  Block *training = branch->addBlock();
  Block *eval = branch->addBlock();
  cloneBodyInto(*body, training, *graph);
  cloneBodyInto(*body, eval, *graph);
  for (Value *output : body->outputs())
    graph->registerOutput(branch->addOutput()->setType(output->type()));

  Value *no = nullptr;
  {
    torch::jit::WithInsertPoint before(branch);
    no = graph->insertConstant(false);
  }
  std::vector<Node *> inEval;
  collectNodes(eval, inEval);
  for (Node *node : inEval)
    if (readsTraining(node))
      node->output()->replaceAllUsesWith(no);
  foldConstantBranches(graph);
  torch::jit::EliminateDeadCode(graph);
  result.evalBlock = eval;
  result.flags = static_cast<int>(paths->size());
  return result;
}

} // namespace rdna1::passes
