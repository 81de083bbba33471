local util = require "luari.util"

describe("luari.util", function()
  describe("failure_cause", function()
    it("drops curl's elapsed time, so one cause reads the same on every try", function()
      local a = "ws://127.0.0.1:8088/ari/events: cannot connect: Failed to connect to 127.0.0.1 port 8088"
        .. " after 0 ms: Couldn't connect to server"
      local b = a:gsub("after 0 ms", "after 1 ms")
      assert.are_not.equal(a, b)
      assert.are.equal(util.failure_cause(a), util.failure_cause(b))
      assert.are.equal(util.failure_cause("Connection timed out after 10001 milliseconds"),
        util.failure_cause("Connection timed out after 10002 milliseconds"))
    end)

    it("keeps what tells causes apart", function()
      assert.are_not.equal(util.failure_cause("refused the WebSocket: HTTP 401 Unauthorized"),
        util.failure_cause("refused the WebSocket: HTTP 503 Service Unavailable"))
      assert.are_not.equal(util.failure_cause("the server closed the connection"),
        util.failure_cause("cannot connect: Couldn't connect to server"))
      assert.are.equal("port 8088 is closed", util.failure_cause("port 8088 is closed"))
    end)
  end)
end)
