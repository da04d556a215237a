#include "ReshapeInsteadOfView.h"

#include "GraphWalk.h"
#include "StorageWrites.h"

namespace rdna1::passes {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool isView(const Node *node) {
  return node->kind() == c10::aten::view && node->inputs().size() == 2 &&
         node->input(1)->type()->kind() == c10::TypeKind::ListType;
}

} // namespace

int ReshapeInsteadOfView(const std::shared_ptr<torch::jit::Graph> &graph) {
  std::vector<Node *> views;
  for (Node *node : allNodes(graph))
    if (isView(node) && !StorageMayBeWritten(node->output()))
      views.push_back(node);
  for (Node *view : views) {
    torch::jit::WithInsertPoint before(view);
    Value *reshaped = graph->insert(c10::aten::reshape, {view->input(0), view->input(1)});
    reshaped->setType(view->output()->type());
    view->output()->replaceAllUsesWith(reshaped);
    view->destroy();
  }
  return static_cast<int>(views.size());
}

} // namespace rdna1::passes
