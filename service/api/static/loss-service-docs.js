/* /docs: starts Swagger UI with the PairedExamples plugin. The configuration comes from the page's
   JSON block (service/api/docs.py) rather than an inline script, so the page's Content-Security-Policy
   can forbid inline scripts. */
(function () {
  "use strict";

  var BODY_EXAMPLES = ["requestBody", "content", "application/json", "examples"];

  /* Swagger UI cannot pair a parameter's examples with the request body's: each has its own Examples
     list, so choosing the `huber` body would still run it against the prefilled `name` and compute
     another loss (or fail). The service gives such a parameter examples under the same keys, in the
     same order, as the body's (service/api/doc_examples.py); this plugin keeps the parameter, the
     body and the 200 response on the same example, whichever list the user changes. */
  function PairedExamples(system) {
    function pairedParameters(operation) {
      var bodyKeys = operation && operation.getIn(BODY_EXAMPLES) && operation.getIn(BODY_EXAMPLES).keySeq();
      if (!bodyKeys) return [];
      return (operation.get("parameters") || []).filter(function (parameter) {
        var examples = parameter.get("examples");
        return examples && examples.keySeq().equals(bodyKeys);
      });
    }

    function follow(payload) {
      var pathMethod = payload.pathMethod;
      var operation = system.specSelectors.specJsonWithResolvedSubtrees().getIn(["paths"].concat(pathMethod));
      pairedParameters(operation).forEach(function (parameter) {
        if (payload.contextType === "requestBody") {
          var value = parameter.getIn(["examples", payload.name, "value"]);
          var current = system.specSelectors.parameterWithMetaByIdentity(pathMethod, parameter).get("value");
          if (value !== undefined && value !== current) {
            system.specActions.changeParamByIdentity(pathMethod, parameter, value);
          }
        } else if (payload.contextType === "parameters"
                   && payload.contextName === parameter.get("name") + "-" + parameter.get("in")) {
          var body = operation.getIn(BODY_EXAMPLES.concat([payload.name, "value"]));
          if (body === undefined) return;
          // The body's list first: several losses share one example body, and Swagger UI shows the
          // first example matching a new value unless the selected one matches too.
          if (system.oas3Selectors.activeExamplesMember(pathMethod[0], pathMethod[1], "requestBody",
                                                        "requestBody") !== payload.name) {
            system.oas3Actions.setActiveExamplesMember({
              name: payload.name, pathMethod: pathMethod, contextType: "requestBody", contextName: "requestBody"});
          }
          var text = JSON.stringify(body.toJS ? body.toJS() : body, null, 2);
          if (text !== system.oas3Selectors.requestBodyValue(pathMethod[0], pathMethod[1])) {
            system.oas3Actions.setRequestBodyValue({pathMethod: pathMethod, value: text});
          }
        } else {
          return;
        }
        if (operation.getIn(["responses", "200", "content", "application/json", "examples", payload.name])) {
          system.oas3Actions.setActiveExamplesMember({
            name: payload.name, pathMethod: pathMethod, contextType: "responses", contextName: "200"});
        }
      });
    }

    return {
      statePlugins: {
        oas3: {
          wrapActions: {
            setActiveExamplesMember: function (original) {
              return function (payload) {
                var result = original(payload);
                follow(payload);
                return result;
              };
            }
          }
        }
      }
    };
  }

  var config = JSON.parse(document.getElementById("swagger-ui-config").textContent);
  if (config.oauth2RedirectUrl) {
    config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectUrl;
  }
  config.presets = [window.SwaggerUIBundle.presets.apis];
  config.plugins = [PairedExamples];
  window.ui = window.SwaggerUIBundle(config);
})();
